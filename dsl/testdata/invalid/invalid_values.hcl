network "lan" {
  subnet  = "10.89.0.1/24"
  gateway = "10.89.0"
  driver  = "overlay"
}

container "web" {
  name         = "-web"
  image        = "busybox"
  restart      = "sometimes"
  stop_signal  = "SIGSTOP"
  stop_timeout = "10 seconds"
  cap_add      = ["NET_ADMIN", "FLY"]
  working_dir  = "app"
  port {
    target    = 80
    published = 70000
    protocol  = "sctp"
  }
  resources {
    memory = "lots"
    cpus   = 0
  }
  mount {
    target     = "/tmp"
    tmpfs      = true
    tmpfs_size = "1k"
  }
}
