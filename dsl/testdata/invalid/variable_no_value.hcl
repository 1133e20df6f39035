variable "image" {
  type        = string
  description = "the image to run"
}

container "web" {
  image = var.image
}
