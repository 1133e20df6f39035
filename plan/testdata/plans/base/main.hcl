image "web" {
  rootfs  = "../rootfs-v1"
  command = ["/hello"]
}

network "front" {}

volume "data" {}

container "web" {
  image   = image.web.ref
  command = ["/hello", "-listen", ":8080"]

  network {
    name    = network.front.name
    aliases = ["web"]
  }

  port {
    published = 18080
    target    = 8080
  }

  mount {
    volume = volume.data.name
    target = "/data"
  }

  resources {
    memory = "64M"
  }
}

output "ip" {
  value = container.web.ip_address
}
