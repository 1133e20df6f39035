network "lan" {}

container "web" {
  image = "busybox"
  network {
    name = network.wan.name
  }
}
