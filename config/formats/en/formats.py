"""English date formats, with the zone named in every date-and-time.

Django's own, plus "T" (the zone's abbreviation: EST, CET) at the end of the
datetime formats: the admin shows publish and send times in the newsroom's
zone (newsletter.middleware), and a time without its zone is ambiguous for
a newsroom whose readers live everywhere.
"""

DATETIME_FORMAT = "N j, Y, P T"
SHORT_DATETIME_FORMAT = "m/d/Y P T"
