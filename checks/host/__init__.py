"""Host probes: rings, sensitive instructions, CPUID and KVM, emulation, containers."""
