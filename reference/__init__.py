"""NumPy reference kernels: readable forward and hand-written backward (vjp) per component.

Every function is dtype-generic: it computes in the dtype of its inputs (float64 is the ground
truth; float32, float16 and ml_dtypes.bfloat16 run the same code). No torch here.
"""
