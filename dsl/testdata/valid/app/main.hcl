# The configuration the load tests check: count, for_each, locals that use
# resources, depends_on, relative paths, templates and files.
variable "replicas" {
  type    = number
  default = 1
}

variable "tag" {
  default = "v1"
}

variable "zones" {
  type    = set(string)
  default = ["eu", "us"]
}

variable "env" {
  type    = map(string)
  default = {}
}

locals {
  image_ref = image.app.ref
  web_name  = "web-${var.tag}"
  greeting  = templatefile("greeting.tpl", { name = local.web_name, zones = var.zones })
}

image "app" {
  rootfs  = "./rootfs"
  command = ["/bin/app"]
}

network "lan" {
  for_each = var.zones
  subnet   = each.key == "eu" ? "10.89.0.0/24" : "10.89.1.0/24"
  labels   = { zone = each.value }
}

volume "data" {}

container "web" {
  count    = var.replicas
  image    = local.image_ref
  hostname = "${local.web_name}-${count.index}"
  env      = merge(var.env, { GREETING = local.greeting, CONFIG = trimspace(file("conf/app.conf")) })

  port {
    target    = 80
    published = 8080 + count.index
  }
  mount {
    bind   = "./html"
    target = "/usr/share/html"
  }
  mount {
    volume = volume.data.name
    target = "/data"
  }
  network {
    name = network.lan["eu"].name
  }
}

container "proxy" {
  image      = image.app.ref
  depends_on = [container.web]
  command    = [for c in container.web : c.hostname]
  resources {
    memory = "64M"
  }
}

output "web_names" {
  value       = container.web[*].name
  description = "the web containers"
}
