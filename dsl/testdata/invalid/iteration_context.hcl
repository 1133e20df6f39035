locals {
  i = count.index
}

container "plain" {
  image    = "busybox"
  hostname = "web-${count.index}"
  user     = each.key
}

container "counted" {
  count    = 2
  image    = "busybox"
  hostname = "web-${count.number}"
}

container "keyed" {
  for_each = { a = 1 }
  image    = "busybox"
  hostname = each.name
}

container "user" {
  image      = "busybox"
  hostname   = container.counted.name
  user       = container.plain[0].user
  entrypoint = [container.keyed.id]
}
