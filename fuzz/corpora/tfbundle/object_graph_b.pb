
È
layer-0
layer_with_weights-0
layer-1
layer_with_weights-1
layer-2
layer_with_weights-2
layer-3
	optimizer5
OBJECT_CONFIG_JSON/.ATTRIBUTES/OBJECT_CONFIG_JSON
><
OBJECT_CONFIG_JSON&layer-0/.ATTRIBUTES/OBJECT_CONFIG_JSON
a

kernel
biasI
OBJECT_CONFIG_JSON3layer_with_weights-0/.ATTRIBUTES/OBJECT_CONFIG_JSON
a

kernel
	biasI
OBJECT_CONFIG_JSON3layer_with_weights-1/.ATTRIBUTES/OBJECT_CONFIG_JSON
a


kernel
biasI
OBJECT_CONFIG_JSON3layer_with_weights-2/.ATTRIBUTES/OBJECT_CONFIG_JSON
 
	optimizer
global_step
XV
VARIABLE_VALUEdense/kernel6layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE
TR
VARIABLE_VALUE
dense/bias4layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE
ZX
VARIABLE_VALUEdense_1/kernel6layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE
VT
VARIABLE_VALUEdense_1/bias4layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE
ZX
VARIABLE_VALUEdense_2/kernel6layer_with_weights-2/kernel/.ATTRIBUTES/VARIABLE_VALUE
VT
VARIABLE_VALUEdense_2/bias4layer_with_weights-2/bias/.ATTRIBUTES/VARIABLE_VALUE
Ž
beta1_power
beta2_powermmm	m
mmvvv	v
vv
\Z
VARIABLE_VALUETFOptimizer/iterations0optimizer/global_step/.ATTRIBUTES/VARIABLE_VALUE
pn
VARIABLE_VALUE training/TFOptimizer/beta1_power:optimizer/optimizer/beta1_power/.ATTRIBUTES/VARIABLE_VALUE
pn
VARIABLE_VALUE training/TFOptimizer/beta2_power:optimizer/optimizer/beta2_power/.ATTRIBUTES/VARIABLE_VALUE
„
VARIABLE_VALUEdense/kernel/Adam\layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE
}
VARIABLE_VALUEdense/bias/AdamZlayer_with_weights-0/bias/.OPTIMIZER_SLOT/optimizer/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE
†ƒ
VARIABLE_VALUEdense_1/kernel/Adam\layer_with_weights-1/kernel/.OPTIMIZER_SLOT/optimizer/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE

VARIABLE_VALUEdense_1/bias/AdamZlayer_with_weights-1/bias/.OPTIMIZER_SLOT/optimizer/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE
†ƒ
VARIABLE_VALUEdense_2/kernel/Adam\layer_with_weights-2/kernel/.OPTIMIZER_SLOT/optimizer/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE

VARIABLE_VALUEdense_2/bias/AdamZlayer_with_weights-2/bias/.OPTIMIZER_SLOT/optimizer/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE
†ƒ
VARIABLE_VALUEdense/kernel/Adam_1\layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/optimizer/v/.ATTRIBUTES/VARIABLE_VALUE

VARIABLE_VALUEdense/bias/Adam_1Zlayer_with_weights-0/bias/.OPTIMIZER_SLOT/optimizer/optimizer/v/.ATTRIBUTES/VARIABLE_VALUE
ˆ…
VARIABLE_VALUEdense_1/kernel/Adam_1\layer_with_weights-1/kernel/.OPTIMIZER_SLOT/optimizer/optimizer/v/.ATTRIBUTES/VARIABLE_VALUE
„
VARIABLE_VALUEdense_1/bias/Adam_1Zlayer_with_weights-1/bias/.OPTIMIZER_SLOT/optimizer/optimizer/v/.ATTRIBUTES/VARIABLE_VALUE
ˆ…
VARIABLE_VALUEdense_2/kernel/Adam_1\layer_with_weights-2/kernel/.OPTIMIZER_SLOT/optimizer/optimizer/v/.ATTRIBUTES/VARIABLE_VALUE
„
VARIABLE_VALUEdense_2/bias/Adam_1Zlayer_with_weights-2/bias/.OPTIMIZER_SLOT/optimizer/optimizer/v/.ATTRIBUTES/VARIABLE_VALUE