container "web" {
  image = "busybox"
  ports {
    target    = 80
    published = 8080
  }
  port {
    target    = 80
    published = 8080
    labels    = { a = "b" }
  }
}

volume "data" {
  driver {}
}
