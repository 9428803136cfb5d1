# A read-only reporting job: members of group 1500 ("reports") may give
# report modules the published reports, read-only, by name or beneath
# /srv/reports, for at most 8 hours. Nothing under /srv/reports/private is
# given to anyone, however it is asked for: not the directory, not a file
# in it, and not /srv/reports itself, whose handle would reach it.

resource "dir" "reports" {
  path      = "/srv/reports/published"
  read_only = true
}

grant "reports-read" {
  resources = ["dir:reports", "dir:/srv/reports", "file:/srv/reports"]
  read_only = true
  ttl       = "8h"

  subject {
    gids = [1500]
  }

  module {
    labels = { role = "report" }
  }
}

deny "reports-private" {
  resources = ["dir:/srv/reports/private"]
}
