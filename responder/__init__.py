"""raidsim's reference SMS auto-responder and the defence policy it shares with the simulator."""
