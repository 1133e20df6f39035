container "web" {
  image = "busybox"
}

network "web" {}

container "web" {
  image = "nginx"
}
