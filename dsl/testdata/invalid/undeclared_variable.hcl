variable "replicas" { default = 2 }

locals {
  labels = { team = "web" }
}

container "web" {
  count  = var.replica
  image  = "busybox"
  labels = local.label
}
