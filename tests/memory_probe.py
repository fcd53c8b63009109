"""Peak-memory probes for subprocess tests and benchmarks (Linux)."""
import textwrap

HIGH_WATER = textwrap.dedent(
    """
    def high_water_mb():
        # VmHWM belongs to this process's own address space; ru_maxrss would inherit the parent's peak.
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    """
)
"""Source defining `high_water_mb()`, the peak resident memory of the process that runs it; prepend it
to the code a probe subprocess runs."""
