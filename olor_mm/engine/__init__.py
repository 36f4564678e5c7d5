"""The MMEngine plug-ins: the constructor that attaches the anchored
method (OLOR's rollback, L2-SP, EWC; :mod:`.anchors`), its keys
(:mod:`.config_keys`) and their older spellings (:mod:`.deprecations`),
what the anchor learns from MMEngine (:mod:`.mmengine_context`), EWC's
upstream data (:mod:`.fisher_data`), the two wrappers, the drift hook and
the log forwarding. Needs MMEngine; ``import olor_mm`` registers them."""
