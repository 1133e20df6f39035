# test: -var port=70000
variable "port" {
  type = number
  validation {
    condition     = var.port > 0 && var.port < 65536
    error_message = "port must be between 1 and 65535."
  }
}

variable "env" {
  default = "prod "
  validation {
    condition     = contains(["dev", "prod"], var.env)
    error_message = "env must be dev or prod."
  }
  validation {
    condition     = "yes"
    error_message = "never shown"
  }
}
