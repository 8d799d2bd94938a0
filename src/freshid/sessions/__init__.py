"""Browser sessions: one stable ``sid`` per session, a history of completed authentications."""
