"""The MMEngine plug-ins: the constructor that attaches the rollback,
the optimizer wrappers (OLOR shells, L2-SP, EWC), the drift hook, FSDP's
theta0 sharding, the load check and the log forwarding. Needs MMEngine;
``import olor_mm`` registers them."""
