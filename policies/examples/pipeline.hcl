# A three-stage pipeline (fetch -> parse -> store). The operator (uid 1000)
# launches each stage with its own channel. A stage may pass its inbound
# channel to the next stage, one hop only, narrowed to reading, to at most
# one recipient that carries the same pipeline label; the copy lasts at
# most 15 minutes. The store's upstream channel goes no further.

resource "chan" "fetch-out" {}
resource "chan" "parse-out" {}

grant "pipeline-channels" {
  resources = ["chan:fetch-*", "chan:parse-*"]

  subject {
    uids = [1000]
  }

  module {
    labels = { pipeline = "etl" }
  }
}

delegate "one-hop-read" {
  resources  = ["chan:fetch-*", "chan:parse-*"]
  max_depth  = 1
  max_copies = 1
  rights     = ["fd_read", "poll_fd_readwrite"]
  ttl        = "15m"

  module {
    labels = { pipeline = "etl" }
  }

  to {
    labels = { pipeline = "etl" }
  }
}

deny "store-keeps-its-input" {
  resources = ["chan:parse-out"]
  on        = ["delegate"]

  module {
    labels = { stage = "store" }
  }
}
