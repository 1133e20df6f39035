container "web" {
  count    = 2
  for_each = toset(["a", "b"])
  image    = "busybox"
}
