container "web" {
  image = "busybox"
  resources {
    memory = "256M"
  }
  resources {
    cpus = 1
  }
}
