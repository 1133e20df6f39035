network "lan" {}

container "web" {
  image = image.app.ref
  network {
    name = network.backend.name
  }
  mount {
    volume = volume.data.name
    target = "/data"
  }
}
