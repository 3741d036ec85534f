# Reference for the compiler benchmark: ONNX Runtime's own Python
# quantize_dynamic (QInt8 weights) after its pre-processing, on one model.
# Runs only in the benchmark's private venv (/work/pyref), never in the product.
# usage: python compiler_ref.py IN.onnx OUT.onnx  → prints a JSON status line
import json, sys, tempfile, os
src, dst = sys.argv[1], sys.argv[2]
status = {"ok": False}
try:
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
