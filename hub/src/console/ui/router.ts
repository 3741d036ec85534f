// Hash routes: #/NAME/ARGS… → one view each, and which navigation tab it
// belongs to (a device page is under Fleet, a rollout under Rollouts).
import type { FunctionComponent } from 'preact'
import { FleetView } from './views/fleet'
import { DeviceView } from './views/device'
import { ModelsView } from './views/models'
import { ProvisionView } from './views/provision'
import { TokensView } from './views/tokens'
import { CaptureView } from './views/capture'
import { DeploymentsView } from './views/deployments'
import { RolloutsView, RolloutView } from './views/rollouts'
import { RetrainingView } from './views/retraining'
import { TelemetryView } from './views/telemetry'

export interface ViewProps {
  args: string[]
}
interface Route {
  title: string
  nav: string
  view: FunctionComponent<ViewProps>
}

export const ROUTES: Record<string, Route> = {
  fleet: { title: 'Fleet', nav: 'fleet', view: FleetView },
  device: { title: 'Device', nav: 'fleet', view: DeviceView },
  provision: { title: 'Provisioning', nav: 'provision', view: ProvisionView },
  rollouts: { title: 'Rollouts', nav: 'rollouts', view: RolloutsView },
  rollout: { title: 'Rollout', nav: 'rollouts', view: RolloutView },
  deployments: { title: 'Deployments', nav: 'deployments', view: DeploymentsView },
  models: { title: 'Models', nav: 'models', view: ModelsView },
  capture: { title: 'Capture', nav: 'capture', view: CaptureView },
  retraining: { title: 'Retraining', nav: 'retraining', view: RetrainingView },
  telemetry: { title: 'Telemetry', nav: 'telemetry', view: TelemetryView },
  tokens: { title: 'Tokens', nav: 'tokens', view: TokensView },
}

export const NAV = [
  'fleet',
  'provision',
  'rollouts',
  'deployments',
  'models',
  'capture',
  'retraining',
  'telemetry',
  'tokens',
]

export const viewOf = (name: string | undefined): string => (name && name in ROUTES ? name : 'fleet')
