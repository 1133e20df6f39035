container "web" {
  image    = upper(1, 2)
  hostname = nosuch("x")
  user     = uuid()
}
