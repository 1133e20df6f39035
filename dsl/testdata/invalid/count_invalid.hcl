variable "n" { default = 1.5 }

container "negative" {
  count = -1
  image = "busybox"
}

container "fraction" {
  count = var.n
  image = "busybox"
}

container "text" {
  count = "many"
  image = "busybox"
}

container "null" {
  count = null
  image = "busybox"
}
