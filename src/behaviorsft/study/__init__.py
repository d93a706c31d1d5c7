"""The clinician study: validating bench tasks and comparing blinded agents, and its statistics."""
