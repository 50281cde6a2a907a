"""One router per resource: predictions (incl. the original /image-predict), numbers, history, health, metrics."""
