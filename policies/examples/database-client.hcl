# A database client: modules labelled app=billing, launched by the
# "billing" service account, may be given one socket, the database, with
# send, receive and poll rights only. It may not pass the socket on (there
# is no delegate rule for it), and nobody else may be given it.

resource "sock" "db" {
  tcp = "127.0.0.1:5432"
}

grant "billing-db" {
  resources = ["sock:db"]
  rights    = ["fd_read", "fd_write", "poll_fd_readwrite", "sock_shutdown"]

  subject {
    users = ["billing"]
  }

  module {
    labels = { app = "billing" }
  }
}
