"""SimPy model of an SMS raid, driving the same policy as the responder."""
