# test: -var replicas=many
# test: -var ports=[80,
variable "replicas" {
  type = number
}

variable "ports" {
  type = list(number)
}

variable "labels" {
  type    = map(string)
  default = ["a"]
}

variable "strict" {
  type     = string
  nullable = false
  default  = null
}

variable "mode" {
  type = strin
}
