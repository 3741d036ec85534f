// One place maps errors to HTTP: catalogue codes carry their status; fastify's
// own validation and parsing errors become EF_ERR_HTTP_BAD_REQUEST.
import { ERRORS, EdgeFleetError, isErrorCode, type ErrorCode } from '@edgefleet/shared'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'

function reply(res: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  return res.status(ERRORS[code].status).send({ error: { code, message } })
}

export function errorHandler(err: FastifyError | EdgeFleetError, req: FastifyRequest, res: FastifyReply): FastifyReply {
  if (err instanceof EdgeFleetError) return reply(res, err.code, err.message)
  const fe = err
  if (fe.validation) return reply(res, 'EF_ERR_HTTP_BAD_REQUEST', `${fe.validationContext ?? 'request'} ${fe.message}`)
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply(res, 'EF_ERR_MSG_TOO_LARGE', fe.message)
  if (typeof fe.code === 'string' && fe.code.startsWith('FST_ERR_CTP'))
    return reply(res, 'EF_ERR_HTTP_BAD_REQUEST', fe.message)
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500)
    return reply(res, 'EF_ERR_HTTP_BAD_REQUEST', fe.message)
  if (isErrorCode((err as { code?: string }).code)) return reply(res, (err as { code: ErrorCode }).code, err.message)
  req.log.error({ err }, 'unhandled error')
  return reply(res, 'EF_ERR_INTERNAL', 'internal error; see the hub log')
}

export function notFoundHandler(req: FastifyRequest, res: FastifyReply): FastifyReply {
  return reply(res, 'EF_ERR_HTTP_NOT_FOUND', `${req.method} ${req.url}`)
}
