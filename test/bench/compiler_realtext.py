# Diagnostic (not part of the product or CI): how PP-OCRv4 int8-static behaves on *real* rendered
# text instead of our synthetic strokes. Source image: pino's pretty-demo.png (a terminal screenshot,
# shipped in node_modules with the hub's logger). Det gets 320×320 crops (as is and inverted, BGR,
# ImageNet mean/std); rec/cls get text-line crops resized to 48×320 / 48×192, normalized to [-1, 1].
# Calibrates ORT's quantize_static on half of the crops and scores on the other half; any extra
# model paths given (e.g. an EdgeFleet build of the same model) are scored on the same crops.
#   /work/pyref/bin/python test/bench/compiler_realtext.py det|rec|cls FLOAT.onnx OPS [NX] [extra.onnx ...]
# NX: leave the first NX Conv nodes unquantized (what the planner's keep-float fallback does).
import sys, glob, zlib, struct, os, tempfile, numpy as np, onnx, onnxruntime as ort
from onnxruntime.quantization import quantize_static, QuantType, QuantFormat, CalibrationDataReader, CalibrationMethod

def png(path):
    b = open(path, 'rb').read(); i = 8; idat = b''; pal = None
    while i < len(b):
        n, = struct.unpack('>I', b[i:i + 4]); t = b[i + 4:i + 8]; d = b[i + 8:i + 8 + n]; i += 12 + n
        if t == b'IHDR': w, h, bd, ct = struct.unpack('>IIBB', d[:10])
        elif t == b'PLTE': pal = np.frombuffer(d, np.uint8).reshape(-1, 3)
        elif t == b'IDAT': idat += d
    bpp = {3: 1, 2: 3, 6: 4, 0: 1}[ct]; raw = zlib.decompress(idat); stride = w * bpp
    out = np.zeros((h, stride), np.uint8); prev = np.zeros(stride, np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]; line = np.frombuffer(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)], np.uint8).astype(np.int32); cur = np.zeros(stride, np.int32)
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0; up = prev[x]; c = prev[x - bpp] if x >= bpp else 0
            if f == 0: v = line[x]
            elif f == 1: v = line[x] + a
            elif f == 2: v = line[x] + up
            elif f == 3: v = line[x] + (a + up) // 2
            else:
                p = a + up - c; pa, pb, pc = abs(p - a), abs(p - up), abs(p - c); v = line[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)
            cur[x] = v & 255
        out[y] = cur; prev = cur
    return (pal[out] if ct == 3 else out.reshape(h, w, bpp)[:, :, :3]).astype(np.float32)

def resize(a, h, w):
    H, W = a.shape[:2]; ys = (np.arange(h) + 0.5) * H / h - 0.5; xs = (np.arange(w) + 0.5) * W / w - 0.5
    y0 = np.clip(np.floor(ys).astype(int), 0, H - 1); x0 = np.clip(np.floor(xs).astype(int), 0, W - 1); y1 = np.clip(y0 + 1, 0, H - 1); x1 = np.clip(x0 + 1, 0, W - 1)
    fy = np.clip(ys - y0, 0, 1)[:, None, None]; fx = np.clip(xs - x0, 0, 1)[None, :, None]
    return a[y0][:, x0] * (1 - fy) * (1 - fx) + a[y1][:, x0] * fy * (1 - fx) + a[y0][:, x1] * (1 - fy) * fx + a[y1][:, x1] * fy * fx

def crops(kind):
    img = png(glob.glob('node_modules/.pnpm/pino@*/node_modules/pino/pretty-demo.png')[0]); bgr = img[:, :, ::-1]
    if kind == 'det':
        m, s = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
        return [((((255 - bgr) if inv else bgr)[y:y + 320, x:x + 320] / 255 - m) / s).transpose(2, 0, 1)[None].astype(np.float32)
                for inv in (0, 1) for y in (0, 174, 349) for x in (0, 263, 527)]
    g = img.mean(2); rows = (np.abs(g - g.mean(1, keepdims=True)) > 40).sum(1) > 3; bands = []; y = 0
    while y < len(rows):
        if rows[y]:
            e = y
            while e < len(rows) and rows[e]: e += 1
            if e - y >= 6: bands.append((max(0, y - 3), min(len(rows), e + 3)))
            y = e
        else: y += 1
    out = []; W = 320 if kind == 'rec' else 192
    for i, (a, b) in enumerate(bands):
        band = bgr[a:b]; cols = np.where((np.abs(band.mean(2) - band.mean()) > 40).any(0))[0]
        if len(cols) < 10: continue
        ww = int(round((b - a) * 320 / 48))
        for j, xs in enumerate((cols[0], cols[0] + ww // 2)):
            c = band[:, xs:xs + ww]
            if c.shape[1] < ww: continue
            c = 255 - c if (i + j) % 2 else c
            out.append(((resize(c, 48, W) / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None].astype(np.float32))
    return out

kind, src, ops = sys.argv[1], sys.argv[2], sys.argv[3].split(',')
nx = int(sys.argv[4]) if len(sys.argv) > 4 else 0; extra = sys.argv[5:]
xs = crops(kind); cal, val = xs[0::2], xs[1::2]
m = onnx.load(src); name = m.graph.input[0].name
convs = [n.name for n in m.graph.node if n.op_type == 'Conv'][:nx]
class Reader(CalibrationDataReader):
    def __init__(self): self.it = iter([{name: x} for x in cal])
    def get_next(self): return next(self.it, None)
dst = os.path.join(tempfile.mkdtemp(), 'ort-static.onnx')
quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                op_types_to_quantize=ops, calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=convs)
so = ort.SessionOptions(); so.intra_op_num_threads = 1
f = ort.InferenceSession(src, so, providers=['CPUExecutionProvider']); refs = [f.run(None, {name: x})[0] for x in val]
for label, p in [(f'ORT quantize_static {",".join(ops)} first {nx} float', dst)] + [(os.path.basename(e), e) for e in extra]:
    q = ort.InferenceSession(p, so, providers=['CPUExecutionProvider']); cs, agree = [], []
    for x, r in zip(val, refs):
        y = q.run(None, {name: x})[0]; a, b = r.ravel().astype(np.float64), y.ravel().astype(np.float64)
        if a @ a < 1e-12: continue  # a crop with no text at all: cosine is undefined
        cs.append(a @ b / np.sqrt(a @ a * b @ b))
        agree.append(((r > 0.3) & (y > 0.3)).sum() / max(1, ((r > 0.3) | (y > 0.3)).sum()) if kind == 'det' else (r.argmax(-1) == y.argmax(-1)).mean())
    print(f'{kind} {label}: {len(cs)} crops, cosine mean {np.mean(cs):.4f} min {min(cs):.4f}, {"mask(>0.3) IoU" if kind == "det" else "top-1"} {np.mean(agree):.3f}')
