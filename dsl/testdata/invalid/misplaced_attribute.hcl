container "c" {
  image  = "x"
  memory = "64M"
}
