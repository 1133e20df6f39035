container "web" {
  image     = "busybox"
  read_only = "maybe"
  command   = "sleep 10"
  env       = ["A=1"]
  port {
    target    = "eighty"
    published = 8080
  }
}
