container "a" {
  image    = "busybox"
  hostname = container.b.name
}

container "b" {
  image      = "busybox"
  depends_on = [container.a]
}

container "self" {
  image    = "busybox"
  hostname = container.self.id
}
