container "list" {
  for_each = ["a", "b"]
  image    = "busybox"
}

container "number" {
  for_each = 3
  image    = "busybox"
}

container "numbers" {
  for_each = toset([1, 2])
  image    = "busybox"
}
