"""Face verification: model packs, engine, enrolment, door decisions (issue 4)."""
