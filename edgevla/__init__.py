"""edgevla: vision-language-action policies on hobby robot arms and edge computers.

Data flows through the subpackages in this order:
hardware -> drivers -> teleop/record -> dataset -> train -> export/quantize -> runtime -> drivers.
The robot side (hardware, drivers, runtime) imports no torch.
"""

__version__ = "0.1.0"
