"""Export and quantization of torch policies for the edge (needs the `export` extra).

onnx_graphs.py          the two ONNX graphs (prefix encoder, one denoise step) + the artifact directory
quantize.py             int8-dynamic, int8-static (QDQ, calibrated), fp16 artifacts; int8 weight counts
calibration_samples.py  observations to calibrate int8-static scales, from a LeRobotDataset v3.0 or .npz files
bnb.py                  bitsandbytes int8 / nf4 on the torch model
tensorrt.py             trtexec command lines, a how-to, and engine builds where TensorRT is installed
parity.py               torch vs artifact on the same observations and noise (`edgevla check`)
"""
