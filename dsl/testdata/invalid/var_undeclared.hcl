# test: -var replica=3
# test: -var-file testdata/invalid/var_undeclared.vars
variable "replicas" {
  default = 1
}
