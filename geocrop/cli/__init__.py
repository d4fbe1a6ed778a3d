"""Click commands: parse flags, call one library function, report. No logic lives here."""
