file(READ ${IN} content)
file(WRITE ${OUT} "#include <string_view>\nnamespace teiten::embedded {\nextern const std::string_view ${SYMBOL};\nconst std::string_view ${SYMBOL} = R\"teiten_embed(${content})teiten_embed\";\n}\n")
