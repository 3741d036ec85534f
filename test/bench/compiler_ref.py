# Reference for the compiler benchmark: ONNX Runtime's own Python quantizers on one model.
# Runs only in the benchmark's private venv (/work/pyref), never in the product.
# usage: python compiler_ref.py IN.onnx OUT.onnx                       → quantize_dynamic (QInt8), after quant_pre_process
#        python compiler_ref.py IN.onnx OUT.onnx --static CALDIR OPS [METHOD] → quantize_static, QDQ, per-channel s8 weights,
#              u8 activations, MinMax, calibrated on CALDIR/<input>/*.npy; the model is first converted to opset 13 with
#              onnx's version converter and its Constant-node weights moved to initializers (ORT needs both).
# Prints a JSON status line.
import json, sys, tempfile, os, glob
src, dst = sys.argv[1], sys.argv[2]
static = '--static' in sys.argv
status = {"ok": False}
try:
    if static:
        import numpy as np, onnx
        from onnx import version_converter
        from onnxruntime.quantization import quantize_static, QuantType, QuantFormat, CalibrationDataReader, CalibrationMethod
        i = sys.argv.index('--static'); caldir, ops = sys.argv[i + 1], sys.argv[i + 2].split(',')
        method = sys.argv[i + 3] if len(sys.argv) > i + 3 else 'MinMax'  # MinMax, Percentile (99.999) or Entropy
        m = onnx.load(src)
        keep = []
        for n in m.graph.node:
            if n.op_type == 'Constant' and len(n.attribute) == 1 and n.attribute[0].name == 'value':
                t = onnx.TensorProto(); t.CopyFrom(n.attribute[0].t); t.name = n.output[0]; m.graph.initializer.append(t)
            else:
                keep.append(n)
        del m.graph.node[:]; m.graph.node.extend(keep)
        m = version_converter.convert_version(m, 13)
        pre = os.path.join(tempfile.mkdtemp(), "pre13.onnx"); onnx.save(m, pre)
        name = m.graph.input[0].name
        files = sorted(glob.glob(os.path.join(caldir, name, '*.npy')))
        class Reader(CalibrationDataReader):
            def __init__(self): self.it = iter([{name: np.load(f)} for f in files])
            def get_next(self): return next(self.it, None)
        quantize_static(pre, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=ops, calibrate_method=getattr(CalibrationMethod, method))
        status["preprocess"] = "ok"
    else:
        from onnxruntime.quantization import quantize_dynamic, QuantType
        from onnxruntime.quantization.shape_inference import quant_pre_process
        pre = os.path.join(tempfile.mkdtemp(), "pre.onnx")
        try:
            quant_pre_process(src, pre, skip_symbolic_shape=True)
            status["preprocess"] = "ok"
        except Exception as e:  # pre-processing fails on some models; quantize the original then
            status["preprocess"] = f"failed: {str(e).splitlines()[0][:200]}"
            pre = src
        quantize_dynamic(pre, dst, weight_type=QuantType.QInt8)
    status["ok"] = True
except Exception as e:
    status["error"] = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
print(json.dumps(status))
