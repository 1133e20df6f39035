network "lan" {}

locals {
  subnet = network.lan.subnet
}

container "web" {
  count = length(network.lan.subnet)
  image = "busybox"
}

container "api" {
  for_each = toset([local.subnet])
  image    = "busybox"
}
