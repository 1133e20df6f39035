image "web" {
  rootfs  = "../rootfs-v1"
  command = ["/hello"]
}

network "front" {}

volume "data" {}
