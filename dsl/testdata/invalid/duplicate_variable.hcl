variable "port" { default = 80 }
variable "port" { default = 8080 }

locals {
  name = "a"
}
locals {
  name = "b"
}

output "name" { value = local.name }
output "name" { value = var.port }
