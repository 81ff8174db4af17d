"""Old spelling of the CUDA backend, now `rnnlab.backends.cuda.device` and `rnnlab.backends.cuda.host`."""

from ..backends.cuda.device import (CONFIG, Device, availability_problem, get_device,  # noqa: F401
                                    gpu_available, options, simulator_active)
from ..backends.cuda.host import (backward, backward_device, device_weights, forward_device,  # noqa: F401
                                  scan, unsupported)

device = get_device  # the old name of the process-wide Device
