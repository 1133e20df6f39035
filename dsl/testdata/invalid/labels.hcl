container "web" "extra" {
  image = "busybox"
}

container {
  image = "busybox"
}

network "my lan" {}

variable "1st" {}
