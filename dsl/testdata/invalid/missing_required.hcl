container "web" {
  port {
    target = 80
  }
  network {}
}
