"""Robot drivers behind one interface (``base.Robot``), each below the safety layer."""
