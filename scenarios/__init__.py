"""Scenario files, the fake Twilio provider (``fake_provider``) and the Locust replay."""
