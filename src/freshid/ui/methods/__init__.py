"""One module per authentication method: the HTTP side of each (form in, page or redirect out)."""
