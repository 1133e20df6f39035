variable "x" { default = "a" }
network "lan" {}

container "web" {
  image      = "busybox"
  depends_on = "network.lan"
}

container "api" {
  image      = "busybox"
  depends_on = [var.x, network.lan.name, "network.lan"]
}

container "db" {
  image      = "busybox"
  depends_on = [network.wan]
}
